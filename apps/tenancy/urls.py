from django.urls import path

from apps.tenancy import api, views

urlpatterns = [
    path("", views.landing_view, name="landing"),
    path("signup", views.signup_view, name="signup"),
    path("signup/<str:slug>", views.signup_status_view, name="signup-status"),
    path("api/tenants", api.TenantSignupView.as_view(), name="tenant-signup"),
    # Before `<slug>`: "availability" is a reserved slug (apps/tenancy/slugs.py), never a tenant.
    path("api/tenants/availability", api.TenantAvailabilityView.as_view(), name="tenant-availability"),
    path("api/tenants/<str:slug>", api.TenantStatusView.as_view(), name="tenant-status"),
]
