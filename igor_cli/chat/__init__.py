"""igor in chat: text normalisation, the bridge to the commands, the Slack adapter."""
