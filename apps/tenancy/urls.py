from django.urls import path

from apps.tenancy import api

urlpatterns = [
    path("api/tenants", api.TenantSignupView.as_view(), name="tenant-signup"),
    # Before `<slug>`: "availability" is a reserved slug (apps/tenancy/slugs.py), never a tenant.
    path("api/tenants/availability", api.TenantAvailabilityView.as_view(), name="tenant-availability"),
    path("api/tenants/<str:slug>", api.TenantStatusView.as_view(), name="tenant-status"),
]
