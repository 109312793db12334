from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core.views import healthz
from core.views_users import PasswordSetDoneView, PasswordSetView

admin.site.site_header = "Segment Studio administration"
admin.site.site_title = "Segment Studio"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # Where the one-time link an admin sends (Users & roles) lets a person set their password;
    # open without signing in (Django's reset views are @login_not_required).
    path("reset/<slug:uidb64>/<slug:token>/", PasswordSetView.as_view(),
         name="password_reset_confirm"),
    path("reset/done/", PasswordSetDoneView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    # The built-in engine's AEP-compatible REST API (/data/..., /ims/...): bearer tokens, JSON.
    path("", include("engine.api.urls")),
    path("connections/", include("connections.urls")),
    path("jobs/", include("jobs.urls")),
    path("segments/", include("segments.urls")),
    path("exports/", include("exports.urls")),
    path("schedules/", include("schedules.urls")),
    path("profile-data/", include("profiledata.urls")),
    path("", include("core.urls")),
]
