"""A urlconf with views that fail in every way, for the error-contract tests (identity's settings)."""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET
from ninja import Schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.ninja import Id, Text, platform_api
from config.urls.common import handler400, handler403, handler404, handler500
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class Item(Schema):
    name: Text
    parent: Id | None = None


api = platform_api(title="Errors", urls_namespace="errors-api")


@api.post("/items")
def create_item(request: HttpRequest, item: Item) -> dict:
    return {"name": item.name}


@api.get("/items/{int:item_id}")
def get_item(request: HttpRequest, item_id: Id) -> dict:
    return {"id": item_id}


@api.get("/ninja-crash")
def ninja_crash(request: HttpRequest) -> dict:
    raise RuntimeError("secret detail from ninja")


class DrfCrash(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request: object) -> Response:
        raise RuntimeError("secret detail from drf")


@api.get("/ninja-missing")
def ninja_missing(request: HttpRequest) -> dict:
    raise Http404("secret detail of a ninja 404")


def out_of_range(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::integer", [2**40])
    return HttpResponse("unreachable")


def database_down(request: HttpRequest) -> HttpResponse:
    from django.db import OperationalError

    raise OperationalError("connection failed: sorry, too many clients already")


class FailingMiddleware:
    """Fails outside any view, as a middleware that reaches the database would when it is down."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.db import OperationalError

        if request.path == "/api/middleware-database-down":
            raise OperationalError("connection failed: sorry, too many clients already")
        if request.path == "/pages/middleware-crash":
            raise RuntimeError("secret detail from a middleware")
        return self.get_response(request)


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail from a view")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("secret detail of a 404")


@require_GET
def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>a page</p>")


def echo(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse({"name": name, "query": dict(request.GET)})


urlpatterns = [
    *common_urls,
    path("api/", api.urls),
    path("api/crash", crash),
    path("api/out-of-range", out_of_range),
    path("api/database-down", database_down),
    path("api/drf-crash", DrfCrash.as_view()),
    path("api/echo/<str:name>", echo),
    path("api/missing", missing),
    path("pages/crash", crash),
    path("pages/missing", missing),
    path("pages/page", page),
]
