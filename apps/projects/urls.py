from django.urls import path

from apps.projects import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/", views.project_index, name="project-index"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project-settings"),
    path("boards/<int:board_id>/", views.board_page, name="board-page"),
    path("boards/<int:board_id>/cards/", views.board_cards, name="board-cards"),
    path("boards/<int:board_id>/tasks/<int:task_id>/", views.card_panel, name="card-panel"),
    path("search/", views.search_page, name="search-page"),
    path("boards/<int:board_id>/archived/", views.archived_cards, name="archived-cards"),
]
