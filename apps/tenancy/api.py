"""The tenancy HTTP API: signup and public status. Thin: parse, call, shape."""

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.exceptions import NotFound
from apps.tenancy import selectors, services
from apps.tenancy.models import Isolation


class SignupRequest(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    # Checked by the service (slug rules live in one place); bounded here so junk stays small.
    slug = serializers.CharField(max_length=100, trim_whitespace=False)
    owner_email = serializers.EmailField(max_length=254)
    owner_password = serializers.CharField(max_length=1024, trim_whitespace=False)
    owner_full_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    isolation = serializers.CharField(max_length=32, required=False, default=Isolation.SCHEMA)


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class TenantSignupView(PublicView):
    def post(self, request: Request) -> Response:
        body = SignupRequest(data=request.data)
        body.is_valid(raise_exception=True)
        tenant = services.tenant_signup(**body.validated_data, trace_id=getattr(request, "request_id", None))
        return Response(selectors.tenant_public_status(tenant=tenant), status=status.HTTP_201_CREATED)


class TenantStatusView(PublicView):
    def get(self, request: Request, slug: str) -> Response:
        tenant = selectors.tenant_get_by_slug(slug=slug)
        if tenant is None:
            raise NotFound(f"No tenant {slug!r}")
        return Response(selectors.tenant_public_status(tenant=tenant))
