"""Response shapes shared by several routers."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class ListResponse(BaseModel, Generic[T]):
    data: list[T]
    next_after: str | None = None

    @classmethod
    def page(cls, items: list[T], limit: int, last_id: str | None) -> ListResponse[T]:
        return cls(data=items, next_after=last_id if len(items) == limit else None)
