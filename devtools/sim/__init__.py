"""In-process simulators of Microsoft Graph (with its token endpoint) and of RAPID sites, over real HTTP."""

from .base import DEFAULT_TOKEN_KEY, mint_token
from .graph import GraphSimulator
from .rapid import RapidSimulator, SiteSim

__all__ = ["DEFAULT_TOKEN_KEY", "GraphSimulator", "RapidSimulator", "SiteSim", "mint_token"]
