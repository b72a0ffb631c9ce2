from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render

from chowist.accounts import services
from chowist.accounts.forms import ProfileForm, SignUpForm
from chowist.accounts.throttling import password_reset_retry_after, rate_limited_response
from chowist.core.decorators import allow_methods


@allow_methods("GET", "HEAD", "POST")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            # form.save() goes through User.save(): post_save(created=True) counts the sign-up.
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Chowist, {user.get_username()}!")
            return redirect("places:list")
        return render(request, "accounts/signup.html", {"form": form}, status=400)
    return render(request, "accounts/signup.html", {"form": form})


@allow_methods("GET", "HEAD")
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user_profile = services.profile_get_or_create(user=request.user)
    return render(request, "accounts/profile.html", {"profile": user_profile})


@allow_methods("GET", "HEAD", "POST")
@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    user_profile = services.profile_get_or_create(user=request.user)
    form = ProfileForm(request.POST or None, instance=user_profile)
    if request.method == "POST":
        if form.is_valid():
            services.profile_update(profile=user_profile, data=form.cleaned_data)
            messages.success(request, "Profile saved.")
            return redirect("accounts:profile")
        return render(request, "accounts/profile_form.html", {"form": form}, status=400)
    return render(request, "accounts/profile_form.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login view; a logged-in user is sent on, never back to this page."""

    redirect_authenticated_user = True

    def get_redirect_url(self) -> str:
        # ?next=/accounts/login/ for a logged-in user made Django raise "Redirection loop" (a 500).
        url = super().get_redirect_url()
        return "" if url and urlsplit(url).path == self.request.path else url


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, rate-limited, with the e-mail sent by a task (chowist.accounts.services)."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"]
        retry_after = password_reset_retry_after(self.request, email=email)
        if retry_after:
            return rate_limited_response(self.request, what="password-reset requests", retry_after=retry_after)
        services.password_reset_request(
            email=email, domain=get_current_site(self.request).domain, use_https=self.request.is_secure()
        )
        return HttpResponseRedirect(self.get_success_url())
