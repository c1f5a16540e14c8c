"""The K-12 category taxonomy and each category's severity class.

Severity classes drive alert severity, not detection: an under-blocking signal in a CIPA
always-block category pages someone, the same signal in a district-configurable category
goes to chat. Over-blocking of the "often over-blocked" class (health, education, news)
is what keeps students away from pages they are entitled to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CATEGORIES",
    "CATEGORY_NAMES",
    "POLICIES",
    "Category",
    "SeverityClass",
    "is_known_category",
    "severity_class",
]


class SeverityClass(StrEnum):
    CIPA = "cipa_always_block"
    DISTRICT = "district_configurable"
    OFTEN_OVERBLOCKED = "allowed_often_overblocked"


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    severity_class: SeverityClass
    description: str
    threshold: float  # default decision threshold on the model score


_C = SeverityClass.CIPA
_D = SeverityClass.DISTRICT
_O = SeverityClass.OFTEN_OVERBLOCKED

CATEGORIES: tuple[Category, ...] = (
    Category("adult", _C, "Pornography and sexually explicit material", 0.40),
    Category("self_harm", _C, "Self-harm or suicide promotion", 0.40),
    Category("violence", _C, "Graphic violence and gore", 0.45),
    Category("weapons", _C, "Weapons sales and manufacture", 0.45),
    Category("drugs", _C, "Illegal drugs and drug paraphernalia", 0.45),
    Category("hate", _C, "Hate speech and extremist content", 0.45),
    Category("malware", _C, "Malware, phishing and scam sites", 0.40),
    Category("proxy_vpn", _C, "Proxies, VPNs and filter avoidance", 0.45),
    Category("gambling", _C, "Online gambling and betting", 0.45),
    Category("social_media", _D, "Social networks", 0.50),
    Category("games", _D, "Online games", 0.50),
    Category("chat", _D, "Chat and messaging", 0.50),
    Category("streaming_video", _D, "Streaming video", 0.50),
    Category("dating", _D, "Dating sites", 0.50),
    Category("shopping", _D, "Online shopping", 0.50),
    Category("health", _O, "Health and sex education", 0.50),
    Category("education", _O, "Educational resources", 0.50),
    Category("news", _O, "News and current events", 0.50),
    Category("lgbtq_resources", _O, "LGBTQ+ support and resources", 0.50),
    Category("mental_health", _O, "Mental-health support and crisis resources", 0.50),
)

CATEGORY_NAMES: frozenset[str] = frozenset(c.name for c in CATEGORIES)
_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}


def is_known_category(name: str) -> bool:
    return name in CATEGORY_NAMES


def severity_class(name: str) -> SeverityClass:
    """Severity class of a category; raises KeyError for an unknown name."""
    return _BY_NAME[name].severity_class


def category(name: str) -> Category:
    return _BY_NAME[name]


_CIPA = tuple(c.name for c in CATEGORIES if c.severity_class is SeverityClass.CIPA)
_DISTRICT_STANDARD = ("dating", "chat")
_DISTRICT_STRICT = ("dating", "chat", "social_media", "games", "streaming_video")

# Tenant policies: which predicted categories a district blocks. CIPA categories are in
# every policy; district-configurable ones vary. The simulator draws tenants' policies
# from these, and an evaluation replay turns predictions into decisions with one.
POLICIES: dict[str, frozenset[str]] = {
    "cipa-only": frozenset(_CIPA),
    "standard": frozenset(_CIPA + _DISTRICT_STANDARD),
    "strict": frozenset(_CIPA + _DISTRICT_STRICT),
}
