from __future__ import annotations

from django.urls import path

from connections import views

app_name = "connections"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("new/", views.connection_create, name="create"),
    path("<int:pk>/", views.connection_edit, name="edit"),
    path("<int:pk>/test/", views.connection_test, name="test"),
    path("<int:pk>/disable/", views.connection_disable, name="disable"),
    path("<int:pk>/enable/", views.connection_enable, name="enable"),
    path("<int:pk>/default/", views.connection_default, name="default"),
    path("switch/", views.switch, name="switch"),
]
