from toolchat.commands.app import run

run()
