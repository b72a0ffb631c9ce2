from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from chowist.accounts import views
from chowist.core.decorators import allow_methods

# Django's auth views answer a wrong method with an empty 405; these say what is allowed.
form_view = allow_methods("GET", "HEAD", "POST")
page_view = allow_methods("GET", "HEAD")

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", form_view(views.LoginView.as_view()), name="login"),
    path("logout/", allow_methods("POST")(auth_views.LogoutView.as_view()), name="logout"),
    path(
        "password/change/",
        form_view(auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("accounts:password_change_done"))),
        name="password_change",
    ),
    path("password/change/done/", page_view(auth_views.PasswordChangeDoneView.as_view()), name="password_change_done"),
    path(
        "password/reset/",
        form_view(views.PasswordResetView.as_view(success_url=reverse_lazy("accounts:password_reset_done"))),
        name="password_reset",
    ),
    path("password/reset/done/", page_view(auth_views.PasswordResetDoneView.as_view()), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        form_view(
            auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("accounts:password_reset_complete"))
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        page_view(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
    path("profile/", views.profile, name="profile"),
    path("profile/edit/", views.profile_edit, name="profile_edit"),
]
