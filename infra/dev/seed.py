"""`eduscale dev seed`: a demo course on the running local platform, through its public API.

Going through the gateway (not SQL) means the demo is made exactly as a user would make
it: passwords hashed by the Auth service, caches written through, every rule applied.
It is idempotent: accounts that exist are logged in to, and the course, its lessons and
its quiz are only added when missing, so running it twice changes nothing.
The demo passwords are printed on purpose: this is for a platform on your own machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["DEMO_COURSE", "DEMO_INSTRUCTOR", "DEMO_STUDENT", "SeedError", "seed"]


class SeedError(RuntimeError):
    """The platform refused a step or cannot be reached; the message says which."""


@dataclass(frozen=True)
class DemoAccount:
    """A demo login."""

    email: str
    password: str
    display_name: str
    role: str


DEMO_INSTRUCTOR = DemoAccount(
    "instructor@example.com", "demo-instructor-pass", "Ada (demo instructor)", "instructor"
)
DEMO_STUDENT = DemoAccount(
    "student@example.com", "demo-student-pass", "Sam (demo student)", "student"
)

DEMO_COURSE: dict[str, Any] = {
    "title": "Demo: Fractions for beginners",
    "description": "A short demo course loaded by `eduscale dev seed`.",
    "lessons": [
        {
            "title": "What is a fraction?",
            "body": "A fraction is a part of a whole. In 3/4 the denominator 4 says the whole is "
            "cut into four equal parts and the numerator 3 says we take three of them.",
        },
        {
            "title": "Equivalent fractions",
            "body": "Multiplying the numerator and the denominator by the same number gives an "
            "equivalent fraction: 1/2 = 2/4 = 4/8. Dividing both by a common factor simplifies it.",
        },
        {
            "title": "Adding fractions",
            "body": "To add fractions, first give them a common denominator, then add the "
            "numerators: 1/4 + 1/2 = 1/4 + 2/4 = 3/4.",
        },
    ],
    "quiz": {
        "title": "Fractions check",
        "questions": [
            {
                "prompt": "In 3/4, what does the 4 tell you?",
                "choices": ["How many parts we take", "How many equal parts make the whole"],
                "answer_index": 1,
            },
            {
                "prompt": "Which fraction equals 1/2?",
                "choices": ["2/3", "3/6", "1/4"],
                "answer_index": 1,
            },
        ],
    },
}


def _check(response: httpx.Response, step: str, *ok: int) -> dict[str, Any]:
    if response.status_code not in ok:
        raise SeedError(f"{step}: HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def _login(client: httpx.Client, account: DemoAccount) -> dict[str, str]:
    registered = client.post(
        "/auth/register",
        json={
            "email": account.email,
            "password": account.password,
            "display_name": account.display_name,
            "role": account.role,
        },
    )
    _check(registered, f"registering {account.email}", 201, 409)
    token = _check(
        client.post("/auth/login", json={"email": account.email, "password": account.password}),
        f"logging in as {account.email} (was its password changed?)",
        200,
    )
    return {"Authorization": f"Bearer {token['access_token']}"}


def _find_course(client: httpx.Client, headers: dict[str, str], owner: str) -> str | None:
    cursor: str | None = None
    while True:
        params = {"q": DEMO_COURSE["title"], "limit": 50, **({"cursor": cursor} if cursor else {})}
        page = _check(client.get("/courses", params=params, headers=headers), "listing", 200)
        for item in page["items"]:
            if item["title"] == DEMO_COURSE["title"]:
                course = _check(
                    client.get(f"/courses/{item['id']}", headers=headers), "reading", 200
                )
                if course["owner_id"] == owner:
                    return str(item["id"])
        cursor = page.get("next_cursor")
        if not cursor:
            return None


def seed(base_url: str, say: Callable[[str], None]) -> None:
    """Make sure the demo accounts, course, lessons and quiz exist."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        try:
            client.get("/health/live")
        except httpx.TransportError:
            raise SeedError(
                f"nothing answers on {base_url}: start the platform with `eduscale dev up` "
                "(or pass --url)"
            ) from None
        instructor = _login(client, DEMO_INSTRUCTOR)
        _login(client, DEMO_STUDENT)
        me = _check(client.get("/auth/me", headers=instructor), "reading the instructor", 200)
        course_id = _find_course(client, instructor, str(me["id"]))
        if course_id is None:
            created = client.post(
                "/courses",
                json={"title": DEMO_COURSE["title"], "description": DEMO_COURSE["description"]},
                headers=instructor,
            )
            course_id = str(_check(created, "creating the course", 201)["id"])
            say(f"created the course {DEMO_COURSE['title']!r}")
        course = _check(client.get(f"/courses/{course_id}", headers=instructor), "reading", 200)
        lessons = {lesson["title"]: str(lesson["id"]) for lesson in course["lessons"]}
        for lesson in DEMO_COURSE["lessons"]:
            if lesson["title"] not in lessons:
                added = client.post(
                    f"/courses/{course_id}/lessons", json=lesson, headers=instructor
                )
                lessons[lesson["title"]] = str(_check(added, "adding a lesson", 201)["id"])
                say(f"added the lesson {lesson['title']!r}")
        report = _check(
            client.get(f"/courses/{course_id}/report", headers=instructor), "reading quizzes", 200
        )
        quiz = DEMO_COURSE["quiz"]
        if not any(q["title"] == quiz["title"] for q in report["quizzes"]):
            first_lesson = lessons[DEMO_COURSE["lessons"][0]["title"]]
            added = client.post(
                f"/courses/{course_id}/quizzes",
                json={**quiz, "lesson_id": first_lesson},
                headers=instructor,
            )
            _check(added, "adding the quiz", 201)
            say(f"added the quiz {quiz['title']!r}")
    say(f"The demo course is ready: {base_url}/courses/{course_id}")
    for account in (DEMO_INSTRUCTOR, DEMO_STUDENT):
        say(f"  {account.role:<10} {account.email} / {account.password}")
    say(
        f"Log in: curl -s {base_url}/auth/login -H 'Content-Type: application/json' "
        f'-d \'{{"email": "{DEMO_STUDENT.email}", "password": "{DEMO_STUDENT.password}"}}\''
    )
