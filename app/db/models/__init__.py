"""One module per table; importing this package registers them all on `Base.metadata`."""

from app.db.models.api_key import ApiKey
from app.db.models.conversation import Conversation, ConversationItem
from app.db.models.idempotency_key import IdempotencyKey
from app.db.models.item import Item
from app.db.models.prompt import Prompt
from app.db.models.response import ResponseRow
from app.db.models.server_secret import ServerSecret

__all__ = [
    "ApiKey",
    "Conversation",
    "ConversationItem",
    "IdempotencyKey",
    "Item",
    "Prompt",
    "ResponseRow",
    "ServerSecret",
]
