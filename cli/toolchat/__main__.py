from toolchat.app import run

run()
