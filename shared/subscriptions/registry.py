"""The names shared/jobs imports from before the subscriptions package was split; the code lives in
meetings.py, lifecycle.py and rotation.py. (To go once shared/jobs imports those modules directly.)"""

from .lifecycle import handle_lifecycle
from .meetings import apply_subscription_item, register_meeting, remove_subscription_item
from .rotation import ROTATE_OP, rotate

__all__ = ["ROTATE_OP", "apply_subscription_item", "handle_lifecycle", "register_meeting", "remove_subscription_item",
           "rotate"]
