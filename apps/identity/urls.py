from django.urls import path

from apps.identity import api, views

urlpatterns = [
    path(".well-known/jwks.json", api.JwksView.as_view(), name="jwks"),
    path("api/auth/token", api.TokenObtainView.as_view(), name="token-obtain"),
    path("api/auth/refresh", api.TokenRefreshView.as_view(), name="token-refresh"),
    path("api/auth/logout", api.LogoutView.as_view(), name="token-logout"),
    path("api/auth/me", api.MeView.as_view(), name="me"),
    path("api/auth/password", api.PasswordChangeView.as_view(), name="password-change"),
    path("api/auth/verify-email", api.EmailVerifyView.as_view(), name="email-verify"),
    path("api/auth/verify-email/resend", api.EmailVerifyResendView.as_view(), name="email-verify-resend"),
    path("api/auth/resume", views.session_resume_view, name="session-resume"),
    path("api/users", api.UserListView.as_view(), name="users"),
    path("api/users/invitations", api.InvitationListView.as_view(), name="invitations"),
    path("api/users/invitations/accept", api.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("api/users/invitations/<int:invitation_id>", api.InvitationDetailView.as_view(), name="invitation"),
    path(
        "api/users/invitations/<int:invitation_id>/resend", api.InvitationResendView.as_view(), name="invitation-resend"
    ),
    path("api/users/<str:user_id>", api.UserDetailView.as_view(), name="user"),
    path("api/roles", api.RoleListView.as_view(), name="roles"),
    path("api/roles/<str:name>", api.RoleDetailView.as_view(), name="role"),
    path("internal/tenant-owners", api.TenantOwnerView.as_view(), name="internal-tenant-owners"),
    path("login", views.login_view, name="login"),
    path("login/invitation/<str:token>", views.invitation_view, name="invitation-page"),
    path("login/verify", views.verification_resend_view, name="verification-resend-page"),
    path("login/verify/<str:token>", views.verification_view, name="verification-page"),
    path("logout", views.logout_view, name="logout"),
    path("members/", views.members_view, name="members"),
]
