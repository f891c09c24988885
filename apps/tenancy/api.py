"""The tenancy HTTP API: signup, slug availability and public status. Thin: parse, call, shape."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.exceptions import NotFound
from apps.tenancy import selectors, services
from apps.tenancy.models import Isolation, TenantStatus


class SignupRequest(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    # Checked by the service (slug rules live in one place); bounded here so junk stays small.
    slug = serializers.CharField(max_length=100, trim_whitespace=False)
    owner_email = serializers.EmailField(max_length=254)
    owner_password = serializers.CharField(max_length=1024, trim_whitespace=False)
    owner_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="The owner's full name."
    )
    owner_full_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="The older name of `owner_name`."
    )
    # The service says which isolations exist (400 invalid_isolation).
    isolation = serializers.CharField(
        max_length=32, required=False, default=Isolation.SCHEMA, help_text="schema (default) or database."
    )


class TenantStatusResponse(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=TenantStatus.choices)
    isolation = serializers.ChoiceField(choices=Isolation.choices)
    failure_reason = serializers.CharField(allow_null=True)


class AvailabilityQuery(serializers.Serializer):
    slug = serializers.CharField(max_length=100, allow_blank=True, trim_whitespace=False)


class AvailabilityResponse(serializers.Serializer):
    slug = serializers.CharField()
    available = serializers.BooleanField()
    code = serializers.CharField(
        allow_null=True,
        help_text=(
            "Why not, as a word: required, too_short, too_long, uppercase, invalid_characters, idn, reserved, taken."
        ),
    )
    reason = serializers.CharField(allow_null=True, help_text="Why not, as a sentence.")


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class TenantSignupView(PublicView):
    @extend_schema(request=SignupRequest, responses={201: TenantStatusResponse})
    def post(self, request: Request) -> Response:
        body = SignupRequest(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        owner_name, older_name = fields.pop("owner_name"), fields.pop("owner_full_name")
        tenant = services.tenant_signup(
            **fields, owner_full_name=owner_name or older_name, trace_id=getattr(request, "request_id", None)
        )
        return Response(selectors.tenant_public_status(tenant=tenant), status=status.HTTP_201_CREATED)


class TenantAvailabilityView(PublicView):
    @extend_schema(
        parameters=[OpenApiParameter("slug", str, required=True, description="The subdomain to check.")],
        responses=AvailabilityResponse,
    )
    def get(self, request: Request) -> Response:
        if "slug" not in request.query_params:
            # This path is also `/api/tenants/<slug>` for the reserved slug "availability": without
            # a `slug` to check it names no tenant (what the gateway's tenant lookup must hear).
            raise NotFound("No tenant 'availability'; to check a subdomain, send ?slug=")
        query = AvailabilityQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.slug_availability(slug=query.validated_data["slug"]))


class TenantStatusView(PublicView):
    @extend_schema(responses=TenantStatusResponse)
    def get(self, request: Request, slug: str) -> Response:
        tenant = selectors.tenant_get_by_slug(slug=slug)
        if tenant is None:
            raise NotFound(f"No tenant {slug!r}")
        return Response(selectors.tenant_public_status(tenant=tenant))
