"""Chat media: Slack (slack-sdk), Telegram's Bot API and Discord's webhooks (httpx)."""
