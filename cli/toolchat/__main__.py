import sys

from toolchat.app import main

sys.exit(main())
