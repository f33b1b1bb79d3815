from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("surveys.urls")),
]

# Participants may land on any of these: each page is translated and in the site's look.
handler400 = "surveys.views.bad_request"
handler404 = "surveys.views.page_not_found"
handler500 = "surveys.views.server_error"
