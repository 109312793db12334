from __future__ import annotations

from django.urls import path

from core import views, views_users

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("section/<slug:slug>/", views.section, name="section"),
    path("audit/", views.audit_list, name="audit"),
    path("users/", views_users.user_list, name="users"),
    path("users/new/", views_users.user_create, name="user_create"),
    path("users/<int:pk>/", views_users.user_detail, name="user_detail"),
    path("users/<int:pk>/role/", views_users.user_role, name="user_role"),
    path("users/<int:pk>/deactivate/", views_users.user_deactivate, name="user_deactivate"),
    path("users/<int:pk>/activate/", views_users.user_activate, name="user_activate"),
    path("users/<int:pk>/password-reset/", views_users.user_password_reset,
         name="user_password_reset"),
]
