from django.http import HttpRequest, HttpResponse


def questionnaire(request: HttpRequest, token: str) -> HttpResponse:  # placeholder
    return HttpResponse("")
