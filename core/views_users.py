"""Users & roles pages (admins only), and the pages where a person sets their password with
the link they were given (anybody holding a valid link). Writes go through core.users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import users
from core.htmx import htmx_template
from core.models import AuditEntry
from core.roles import ADMINS, Role, role_required

USERNAME_TAKEN = "Someone already has this username (usernames ignore upper and lower case)."
EMAIL_TAKEN = "{username} already has this e-mail address: each person needs their own."
BAD_ROLE = "Choose one of the roles: Marketer, Team lead or Admin."
ROLE_HELP = {
    Role.MARKETER: "Writes, estimates and runs segments; exports audiences.",
    Role.TEAM_LEAD: "A marketer who also edits everyone's segments and sees schedules "
                    "and alerts.",
    Role.ADMIN: "Everything, plus connections, profile data, users and the audit log.",
}
NO_PASSWORD_HELP = ("You do not choose a password: the next page shows a link with which they "
                    "set their own, and e-mails it when there is an address.")

# The pages a link opens (registration/password_reset_*.html).
SET_PASSWORD_TITLE = "Set your password"
LINK_INVALID = ("It has been used already, or it expired (links work for {lifetime}). Ask an "
                "admin for a new one.")
PASSWORD_SET = "Your password is set. Sign in with your username and the new password."

SESSION_LINK = "users.password_link"
PAGE_SIZE = 50


class UserCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER.value,
                             widget=forms.RadioSelect)

    class Meta:
        model = get_user_model()
        fields = ["username", "first_name", "last_name", "email"]
        labels = {"email": "E-mail address"}
        help_texts = {"email": "Where the link to set a password is sent. Optional."}

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(USERNAME_TAKEN)
        return username

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip()
        other = get_user_model().objects.filter(email__iexact=email).first() if email else None
        if other is not None:
            raise forms.ValidationError(EMAIL_TAKEN.format(username=other.get_username()))
        return email

    def validate_unique(self) -> None:
        pass  # clean_username said it better, ignoring case


@dataclass(frozen=True)
class Row:
    person: Any
    role: Role | None


def _remember_link(request: HttpRequest, person: Any, link: users.PasswordLink,
                   kind: str) -> None:
    """Keep the link for the one page that shows it next (read once, then forgotten), so a
    reload does not post the form again. Django's own reset view keeps its token in the
    session the same way."""
    request.session[SESSION_LINK] = {"pk": person.pk, "url": link.url, "kind": kind,
                                     "emailed_to": link.emailed_to,
                                     "email_error": link.email_error}


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


@role_required(ADMINS)
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    role = request.GET.get("role", "")
    found = users.user_search(query=query, role=role)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "rows": [Row(person, users.held_role(person)) for person in page.object_list],
        "query": query,
        "role": role,
        "roles": Role.choices,
        "params": params.urlencode(),
        "filtered": bool(query or role),
    }
    template = htmx_template(request, "core/user_list.html", partial="user-table")
    return TemplateResponse(request, template, context)


@role_required(ADMINS)
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        person, link = users.user_create(
            actor=request.user, username=data["username"], first_name=data["first_name"],
            last_name=data["last_name"], email=data["email"], role=Role(data["role"]),
            base_url=_base_url(request))
        _remember_link(request, person, link, "create")
        messages.success(request, users.CREATED.format(name=users.display_name(person)))
        return redirect("core:user_detail", pk=person.pk)
    context = {"form": form, "role_help": ROLE_HELP, "no_password_help": NO_PASSWORD_HELP}
    status = 400 if form.errors else 200
    return TemplateResponse(request, "core/user_form.html", context, status=status)


@role_required(ADMINS)
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=pk)
    link = request.session.get(SESSION_LINK)
    if link and link.get("pk") == person.pk:
        del request.session[SESSION_LINK]
    else:
        link = None
    email_note = ""
    if link:
        if not link["emailed_to"]:
            email_note = users.LINK_NOT_EMAILED.format(name=users.display_name(person))
        elif link["email_error"]:
            email_note = users.LINK_EMAIL_FAILED.format(email=link["emailed_to"],
                                                        error=link["email_error"])
        else:
            email_note = users.LINK_EMAILED.format(email=link["emailed_to"])
    context = {
        "person": person,
        "role": users.held_role(person),
        "roles": Role.choices,
        "role_help": ROLE_HELP,
        "link": link,
        "link_email_note": email_note,
        "link_once": users.LINK_ONCE.format(lifetime=users.link_lifetime()),
        "role_refusal": users.user_role_refusal(user=person),
        "deactivate_refusal": (users.user_deactivate_refusal(actor=request.user, user=person)
                               if person.is_active else ""),
        "is_self": person.pk == request.user.pk,
        "activity": AuditEntry.objects.filter(
            object_type=person._meta.label_lower, object_id=str(person.pk))[:10],
        "audit_url": f"{reverse('core:audit')}?object_type={person._meta.label_lower}",
    }
    return TemplateResponse(request, "core/user_detail.html", context)


def _back(request: HttpRequest, person: Any) -> HttpResponse:
    return redirect("core:user_detail", pk=person.pk)


@role_required(ADMINS)
@require_POST
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=pk)
    if request.POST.get("role") not in Role.values:
        return HttpResponseBadRequest(BAD_ROLE)
    role = Role(request.POST["role"])
    try:
        users.user_set_role(actor=request.user, user=person, role=role)
    except users.UserRefused as refused:
        messages.error(request, refused.message)
        return _back(request, person)
    messages.success(request, users.ROLE_CHANGED.format(name=users.display_name(person),
                                                        role=users.WITH_ARTICLE[role]))
    if person.pk == request.user.pk and role != Role.ADMIN:
        return redirect("core:home")  # they gave up their own admin role: this page is closed
    return _back(request, person)


@role_required(ADMINS)
@require_POST
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        users.user_deactivate(actor=request.user, user=person)
    except users.UserRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, users.DEACTIVATED.format(name=users.display_name(person)))
    return _back(request, person)


@role_required(ADMINS)
@require_POST
def user_activate(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        users.user_activate(actor=request.user, user=person)
    except users.UserRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, users.ACTIVATED.format(name=users.display_name(person)))
    return _back(request, person)


@role_required(ADMINS)
@require_POST
def user_password_reset(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        link = users.user_send_password_reset(actor=request.user, user=person,
                                              base_url=_base_url(request))
    except users.UserRefused as refused:
        messages.error(request, refused.message)
    else:
        _remember_link(request, person, link, "reset")
        messages.success(request, users.RESET_CREATED.format(name=users.display_name(person)))
    return _back(request, person)


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """Django's reset view (already @login_not_required; it moves the token out of the
    address into the session before showing the form), in our look: a deactivated user's
    link does not work, and setting a password is audited."""

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(title=SET_PASSWORD_TITLE,
                       link_invalid=LINK_INVALID.format(lifetime=users.link_lifetime()))
        return context

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        users.user_password_set(user=form.user)
        return response


class PasswordSetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(title=SET_PASSWORD_TITLE, password_set=PASSWORD_SET,
                       login_url=reverse("login"))
        return context
