"""The shortener's API shapes (docs/api.md, "Short links")."""

from datetime import datetime

from ninja import Field, Schema

from apps.common.ninja import INTEGER_MAX, Id, Text


class LinkIn(Schema):
    target: Text | None = Field(None, max_length=2048, description="An http(s) URL on another site")
    task: Id | None = Field(None, description="A task of the caller's organization to share")
    expires_at: datetime | None = Field(None, description="ISO 8601 with a time zone")
    max_visits: int | None = Field(None, ge=1, le=INTEGER_MAX, description="People's visits; bots never count")
    password: Text | None = Field(None, max_length=200)
    alias: Text | None = Field(None, max_length=64, description="A custom code instead of a generated one")


class LinkPatch(Schema):
    """Only the fields sent change; null clears expires_at, max_visits or password."""

    target: Text | None = Field(None, max_length=2048)
    expires_at: datetime | None = None
    max_visits: int | None = Field(None, ge=1, le=INTEGER_MAX)
    password: Text | None = Field(None, max_length=200)


class LinkTaskOut(Schema):
    id: int
    key: str
    title: str


class LinkOut(Schema):
    code: str
    short_url: str
    target: str
    task: LinkTaskOut | None
    expires_at: datetime | None
    max_visits: int | None
    visits: int
    has_password: bool
    status: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    qr_png: str
    qr_svg: str


class LinkPage(Schema):
    items: list[LinkOut]
    count: int
    next: str | None


class LinkListQuery(Schema):
    task: Id | None = None
    status: str | None = Field(None, pattern="^(active|expired|used_up|revoked)$")
    q: Text | None = Field(None, max_length=200)
    mine: bool = False
    limit: int = Field(25, ge=1, le=100)
    offset: int = Field(0, ge=0, le=INTEGER_MAX)
