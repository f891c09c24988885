from django.urls import path

from apps.tenancy import api

urlpatterns = [
    path("api/tenants", api.TenantSignupView.as_view(), name="tenant-signup"),
    path("api/tenants/<str:slug>", api.TenantStatusView.as_view(), name="tenant-status"),
]
