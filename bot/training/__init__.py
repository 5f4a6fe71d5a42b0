"""Training data for a character model: conversations from scenes, corpora and consented chats."""
