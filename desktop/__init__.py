"""WeGen desktop: the PySide6 chat-and-canvas application.

Layout (one concept per file): ``main`` starts the app; ``window`` arranges the panels
(``conversation_list``, ``chat_view``, ``canvas``, ``composer``, ``queue_panel``) and
``window_actions`` holds its menus, toolbar and export commands; ``session`` is
the observable view state that ties the ``database`` and the ``worker`` thread together; ``job``
and ``job_queue`` describe the work the worker does; ``export`` writes what users keep. The
engine is reached through ``engine.api`` alone (images, PNG metadata, errors, enums, the engine
factory); nothing here imports torch: ``engine.api.create_engine`` runs on the worker thread.
"""

from desktop import qt_compat  # noqa: F401  (a PySide6 6.12 work-around; see there)
