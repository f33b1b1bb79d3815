"""The API's own endpoints: issuing and revoking tokens, and the JSON 404 for any unknown
address under /api/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from surveys.errors import RuleViolation

from ..admin_site import second_factor_refusal
from .authentication import TokenAuthentication


class InvalidCredentials(RuleViolation):
    """A wrong username or password at login: 400, as REST framework's own token view
    answers (a 401 would ask for credentials this endpoint does not take)."""

    code = "invalid_credentials"


class SecondFactorRequired(RuleViolation):
    """The password was right, but the second factor is missing or wrong."""

    code = "second_factor_required"


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)
    otp_token = serializers.CharField(
        max_length=16,
        required=False,
        write_only=True,
        help_text="The code of the user's authenticator app, when HYOKA_ADMIN_OTP asks for "
        "one (a staff user, or anyone with an enrolled device).",
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once: send it as `Authorization: Token …`.")
    expiry = serializers.DateTimeField(allow_null=True)
    username = serializers.CharField()


class TokenView(APIView):
    """Exchange a username and password for an API token. The token is stored only as a
    digest (SHA-512); it expires (REST_KNOX TOKEN_TTL, 10 hours by default)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "login"

    @extend_schema(request=LoginSerializer, responses={201: TokenSerializer})
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            # Django's own words, so that they come translated.
            message = _(
                "Please enter a correct %(username)s and password. Note that both "
                "fields may be case-sensitive."
            ) % {"username": get_user_model()._meta.get_field("username").verbose_name}
            raise InvalidCredentials(message)
        refusal = second_factor_refusal(user, serializer.validated_data.get("otp_token"))
        if refusal is not None:
            raise SecondFactorRequired(refusal)
        instance, token = AuthToken.objects.create(user=user)
        body = {"token": token, "expiry": instance.expiry, "username": user.get_username()}
        return Response(TokenSerializer(body).data, status=status.HTTP_201_CREATED)


class LogoutView(APIView):
    """Revoke the token this request authenticates with."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Revoked.")})
    def post(self, request: Request) -> Response:
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotFoundView(APIView):
    """Any other address under /api/: the same JSON 404 as a record out of scope."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise exceptions.NotFound()
