"""A small appointment book: the backend the demo's ``book_appointment`` webhook tool calls.

It stands in for a practice's own booking system so the demo flow works
offline. Bookings live in memory (per process) and a slot can be taken once.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OPENS, CLOSES = 8, 17  # 8 am to 5 pm
_NUMBER_WORDS = {
    word: hour
    for hour, word in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six",
         "seven", "eight", "nine", "ten", "eleven", "twelve"]
    )
}  # fmt: skip
_TIME = re.compile(
    r"^(?P<hour>\d{1,2}|[a-z]+)(?::(?P<minute>\d{2}))?\s*(?P<half>a\.?\s?m\.?|p\.?\s?m\.?)?",
    re.IGNORECASE,
)


class AppointmentIn(BaseModel):
    day: str = Field(max_length=20, examples=["Tuesday"])
    time: str = Field(max_length=20, examples=["10 am"])
    name: str = Field(default="", max_length=100)


@dataclass
class AppointmentBook:
    taken: dict[tuple[str, int], str] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def book(self, day: str, time: str) -> tuple[int, dict[str, str]]:
        """(HTTP status, answer) for a booking request."""
        weekday = day.strip().lower()
        if weekday not in WEEKDAYS:
            return 422, {"error": f"we are open Monday to Friday, not {day}"}
        hour = parse_hour(time)
        if hour is None:
            return 422, {"error": f"could not understand the time {time!r}"}
        if not OPENS <= hour < CLOSES:
            return 422, {"error": "we are open from 8 am to 5 pm"}
        slot = f"{weekday.capitalize()} at {spoken_hour(hour)}"
        if (weekday, hour) in self.taken:
            return 409, {"error": f"{slot} is already taken"}
        reference = f"SD-{next(self._numbers)}"
        self.taken[(weekday, hour)] = reference
        return 201, {"status": "booked", "slot": slot, "reference": reference}


def parse_hour(text: str) -> int | None:
    """'10 am', '2:30 p.m.', 'ten', '14:00', 'noon' -> an hour of the day."""
    value = text.strip().lower()
    if value == "noon":
        return 12
    match = _TIME.match(value)
    if match is None:
        return None
    raw = match.group("hour")
    hour = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw)
    if hour is None or hour > 23:
        return None
    half = (match.group("half") or "").replace(".", "").replace(" ", "")
    if half == "pm" and hour < 12:
        hour += 12
    elif not half and 1 <= hour <= 6:
        hour += 12  # "at 2" at a dental practice means the afternoon
    return hour


def spoken_hour(hour: int) -> str:
    if hour == 12:
        return "12 noon"
    return f"{hour - 12} pm" if hour > 12 else f"{hour} am"


def create_booking_router(book: AppointmentBook | None = None) -> APIRouter:
    appointments = book or AppointmentBook()
    router = APIRouter(prefix="/demo/dental", tags=["demo"])

    @router.post("/appointments")
    async def book_appointment(body: AppointmentIn) -> JSONResponse:
        """Book a slot; 409 when it is taken, 422 when the practice is closed then."""
        status, answer = appointments.book(body.day, body.time)
        return JSONResponse(answer, status_code=status)

    return router
