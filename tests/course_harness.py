"""What the Course tests share: a lesson, a quiz's questions, and a bearer token for a role."""

from __future__ import annotations

import uuid
from typing import Any

from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer

LESSON = {"title": "Fractions", "body": "A fraction is a part of a whole."}
QUIZ_QUESTIONS = [
    {"prompt": "1/2 + 1/2 =", "choices": ["1", "2", "1/4"], "answer_index": 0},
    {"prompt": "1/2 of 8 =", "choices": ["2", "4"], "answer_index": 1},
    {"prompt": "Is 3/3 a whole?", "choices": ["yes", "no"], "answer_index": 0},
]


def headers_for(settings: ServiceSettings, role: str, user_id: uuid.UUID | None = None) -> Any:
    principal = Principal(user_id=user_id or uuid.uuid4(), role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {TokenIssuer(settings).issue(principal)}"}
