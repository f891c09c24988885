"""Writes: creating, changing and ending links, counting visits, and turning the edge's visits
into events. Every event goes through the outbox in the transaction of the change it describes.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.common.exceptions import Conflict, Forbidden, InvalidInput, NotFound
from apps.events.outbox import publish
from apps.shortener import cache, codes, projects_client, throttle
from apps.shortener.access import Caller, link_rights
from apps.shortener.models import Link, LinkStatus, VisitInbox
from apps.shortener.targets import target_problem

MAX_PASSWORD_LENGTH = 200
MAX_VISITS_LIMIT = 1_000_000_000
MAX_REFERRER = 2000
MAX_USER_AGENT = 1000
_CODE_ATTEMPTS = 5
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Visitor:
    """What the gateway tells about a visit (x-visitor-* headers): never the raw IP."""

    visitor: str
    country: str | None
    bot: bool
    referrer: str | None
    user_agent: str | None


def link_status(link: Link, *, now: datetime | None = None) -> str:
    if link.ended_reason:
        return link.ended_reason
    if link.revoked_at is not None:
        return LinkStatus.REVOKED
    if link.expires_at is not None and link.expires_at <= (now or timezone.now()):
        return LinkStatus.EXPIRED
    if link.max_visits is not None and link.visits >= link.max_visits:
        return LinkStatus.USED_UP
    return LinkStatus.ACTIVE


# Creating and changing ---------------------------------------------------------------------------


def _expiry_checked(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if timezone.is_naive(expires_at):
        raise InvalidInput("expires_at needs a time zone, like 2026-12-31T18:00:00Z", code="invalid_expiry")
    if expires_at <= timezone.now() + timedelta(seconds=30):
        raise InvalidInput("expires_at must be in the future", code="invalid_expiry")
    if expires_at > timezone.now() + timedelta(days=3660):
        raise InvalidInput("expires_at is at most ten years ahead", code="invalid_expiry")
    return expires_at


def _max_visits_checked(max_visits: int | None, *, visits: int = 0) -> int | None:
    if max_visits is None:
        return None
    if not 1 <= max_visits <= MAX_VISITS_LIMIT:
        raise InvalidInput(f"max_visits is between 1 and {MAX_VISITS_LIMIT:,}", code="invalid_max_visits")
    if max_visits <= visits:
        raise InvalidInput(
            f"The link already had {visits} visits: max_visits must be more than that", code="invalid_max_visits"
        )
    return max_visits


def _password_hash(password: str) -> str:
    if len(password) < 4:
        raise InvalidInput("A link password is at least 4 characters long", code="invalid_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"A link password is at most {MAX_PASSWORD_LENGTH} characters", code="invalid_password")
    return _hasher.hash(password)


def _require_share_permission(caller: Caller) -> None:
    if "share_task" not in caller.permissions:
        raise Forbidden("Your role may not create share links", code="permission_denied")


def link_create(
    caller: Caller,
    *,
    target: str | None = None,
    task_id: int | None = None,
    expires_at: datetime | None = None,
    max_visits: int | None = None,
    password: str | None = None,
    alias: str | None = None,
) -> Link:
    _require_share_permission(caller)
    if (target is None) == (task_id is None):
        raise InvalidInput("Give either a target URL or a task to share, not both", code="target_or_task")
    link = Link(
        tenant_id=caller.tenant_id,
        tenant_slug=caller.tenant_slug,
        created_by=caller.user_id,
        expires_at=_expiry_checked(expires_at),
        max_visits=_max_visits_checked(max_visits),
        password_hash=_password_hash(password) if password else "",
    )
    if target is not None:
        problem = target_problem(target)
        if problem:
            raise InvalidInput(problem, code="invalid_target", field="target")
        link.target = target
    else:
        assert task_id is not None
        access = projects_client.task_access(tenant_id=caller.tenant_id, task_id=task_id, user_id=caller.user_id)
        if not access.can_read:
            raise NotFound("No such task", code="task_not_found")  # as if absent: no probing
        link.task_id, link.task_key, link.task_title = access.task_id, access.key, access.title[:500]
        link.project_id = access.project_id
    if alias:
        problem = codes.alias_problem(alias)
        if problem:
            raise InvalidInput(problem, code="invalid_alias", field="alias")
    for attempt in range(_CODE_ATTEMPTS):
        link.code = alias or codes.code_generate(caller.tenant_id)
        try:
            with transaction.atomic():
                link.save(force_insert=True)
                publish(
                    "URLCreated",
                    {
                        "code": link.code,
                        "target": link.target or f"task:{link.task_id}",
                        "task_id": None if link.task_id is None else str(link.task_id),
                        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
                        "max_visits": link.max_visits,
                        "has_password": link.has_password,
                        "created_by": caller.user_id,
                    },
                    tenant_id=caller.tenant_id,
                    actor_id=caller.user_id,
                    aggregate_id=link.code,
                )
        except IntegrityError:
            if alias:
                raise Conflict(f"The alias '{alias}' is taken", code="alias_taken", field="alias") from None
            link.pk = None
            if attempt == _CODE_ATTEMPTS - 1:
                raise
            continue
        break
    cache.entry_write(link)
    return link


def _link_for_change(caller: Caller, code: str) -> Link:
    """The caller's tenant's link, locked, if the caller may change it."""
    link = Link.objects.select_for_update().filter(code=code, tenant_id=caller.tenant_id).first()
    if link is None:
        raise NotFound("No such link", code="link_not_found")
    rights = link_rights(caller, link)
    if not rights.can_see:
        raise NotFound("No such link", code="link_not_found")  # not the caller's to see: as if absent
    if not rights.can_change:
        raise Forbidden(
            "Only the link's creator and the project's managers change or revoke it", code="permission_denied"
        )
    return link


_UNSET = object()


def link_update(
    caller: Caller,
    code: str,
    *,
    target: object = _UNSET,
    expires_at: object = _UNSET,
    max_visits: object = _UNSET,
    password: object = _UNSET,
) -> Link:
    with transaction.atomic():
        link = _link_for_change(caller, code)
        if link_status(link) != LinkStatus.ACTIVE:
            raise Conflict(f"This link is {link_status(link).replace('_', ' ')}: create a new one", code="link_ended")
        if target is not _UNSET:
            if link.task_id is not None:
                raise InvalidInput("A task link's target is its task", code="invalid_target", field="target")
            problem = target_problem(str(target or ""))
            if problem:
                raise InvalidInput(problem, code="invalid_target", field="target")
            link.target = str(target)
        if expires_at is not _UNSET:
            link.expires_at = _expiry_checked(expires_at)  # type: ignore[arg-type]
        if max_visits is not _UNSET:
            link.max_visits = _max_visits_checked(max_visits, visits=link.visits)  # type: ignore[arg-type]
        if password is not _UNSET:
            link.password_hash = _password_hash(str(password)) if password else ""
        link.version += 1
        link.updated_at = timezone.now()
        cache.tombstone_write(link)
        link.save()
    cache.entry_write(link)
    return link


def link_revoke(caller: Caller, code: str) -> Link:
    with transaction.atomic():
        link = _link_for_change(caller, code)
        if link.revoked_at is not None:
            return link
        link.revoked_at = timezone.now()
        link.version += 1
        cache.tombstone_write(link)
        link.save(update_fields=["revoked_at", "version", "updated_at"])
        _end(link, LinkStatus.REVOKED, actor_id=caller.user_id)
    return link


def _end(link: Link, reason: str, *, actor_id: str | None) -> bool:
    """Marks the link ended and publishes its one URLExpired, in the caller's transaction."""
    ended = Link.objects.filter(pk=link.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(), ended_reason=reason, version=F("version") + 1
    )
    if not ended:
        return False
    link.ended_reason = reason
    link.version += 1
    publish(
        "URLExpired",
        {"code": link.code, "reason": reason, "task_id": None if link.task_id is None else str(link.task_id)},
        tenant_id=link.tenant_id,
        actor_id=actor_id,
        aggregate_id=link.code,
    )
    return True


def links_expire_due(*, batch: int = 500) -> int:
    """The expiry sweep (Celery beat): one URLExpired for each link whose date has passed."""
    ended = 0
    while True:
        with transaction.atomic():
            due = list(
                Link.objects.select_for_update(skip_locked=True)
                .filter(ended_at__isnull=True, expires_at__lte=timezone.now())
                .order_by("expires_at")[:batch]
            )
            for link in due:
                ended += _end(link, LinkStatus.EXPIRED, actor_id=None)
        if len(due) < batch:
            return ended


# Visits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitOutcome:
    """What the redirect answers: `redirect` (counted or not), `preview` for a bot on a link that
    only people may open, or a refusal (`gone`, `password_required`)."""

    kind: str
    link: Link
    visit_number: int | None = None


def _visit_event(link: Link, visitor: Visitor, *, visit_number: int | None, at: datetime) -> None:
    publish(
        "URLAccessed",
        {
            "code": link.code,
            "accessed_at": at.isoformat(),
            "referrer": (visitor.referrer or "")[:MAX_REFERRER] or None,
            "user_agent": (visitor.user_agent or "")[:MAX_USER_AGENT] or None,
            "visitor": visitor.visitor,
            "country": visitor.country,
            "bot": visitor.bot,
            "task_id": None if link.task_id is None else str(link.task_id),
            **({"visit_number": visit_number} if visit_number else {}),
        },
        tenant_id=link.tenant_id,
        actor_id=None,
        aggregate_id=link.code,
    )


def visit(link: Link, visitor: Visitor, *, unlocked: bool) -> VisitOutcome:
    """One visit of an active link, decided and recorded in one transaction.

    A person's visit takes one of the remaining visits with a conditional UPDATE: the row lock
    serialises concurrent visitors, so a limit of 10 lets exactly 10 through. Bots are recorded
    (flagged) but take nothing, and never get past a link that only people may open.
    """
    if link.has_password and not unlocked:
        return VisitOutcome("password_required", link)
    now = timezone.now()
    gated = link.max_visits is not None or link.has_password or link.is_task_link
    with transaction.atomic():
        if visitor.bot:
            _visit_event(link, visitor, visit_number=None, at=now)
            return VisitOutcome("preview" if gated else "redirect", link)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE shortener_link SET visits = visits + 1 WHERE id = %s AND ended_at IS NULL"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)"
                " AND (max_visits IS NULL OR visits < max_visits) RETURNING visits",
                [link.pk, now],
            )
            row = cursor.fetchone()
        if row is None:
            return VisitOutcome("gone", link)
        link.visits = row[0]
        _visit_event(link, visitor, visit_number=link.visits, at=now)
        if link.max_visits is not None and link.visits >= link.max_visits:
            _end(link, LinkStatus.USED_UP, actor_id=None)
    if cache.is_cacheable(link):
        cache.entry_write(link)  # refill what the gateway lost (eviction, restart)
    return VisitOutcome("redirect", link, visit_number=link.visits)


def password_unlock(link: Link, password: str, *, client: str) -> bool:
    """Checks one guess; every guess is counted first (RateLimited past the limits)."""
    throttle.password_attempt_admit(link.code, client)
    if not link.password_hash or not password or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(link.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def visits_relay(*, batch: int = 2000) -> int:
    """Moves visits the gateway answered into the outbox: one URLAccessed each, and the people
    among them added to their links' visits, in one transaction (so none is lost or doubled)."""
    with transaction.atomic():
        rows = list(VisitInbox.objects.select_for_update(skip_locked=True).order_by("id")[:batch])
        if not rows:
            return 0
        people = Counter(row.code for row in rows if not row.bot)
        links = {
            link.code: link
            for link in Link.objects.select_for_update().filter(code__in={row.code for row in rows}).order_by("id")
        }
        for row in rows:
            link = links.get(row.code)
            if link is None:
                continue  # cannot happen (the gateway only answers codes this service cached)
            number = None
            if not row.bot:
                link.visits += 1
                number = link.visits
            _visit_event(
                link,
                Visitor(row.visitor, row.country, row.bot, row.referrer, row.user_agent),
                visit_number=number,
                at=row.accessed_at,
            )
        for code, count in people.items():
            Link.objects.filter(code=code).update(visits=F("visits") + count)
        VisitInbox.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)
