"""The Conversations API: conversations as ordered references to stored items."""
