"""What the dashboard's pages read: one storage, one result store, loaded studies, a payload cache."""

from __future__ import annotations

import threading

from studies import figures, pages, views


class NotFound(LookupError):
    """A page or a named thing that does not exist (404)."""


class DashboardApp:
    """The dashboard's state, shared by every request thread."""

    def __init__(self, url: str, study: str | None = None, refresh_seconds: float = 3.0):
        from studies.storage import load_study, open_storage, storage_url
        from studies.store import ResultStore

        self.storage = open_storage(url, create=False, heartbeat_interval=None)
        self.source = storage_url(self.storage)
        self.results = ResultStore(url, create=False)
        self.refresh_ms = max(200, int(refresh_seconds * 1000))
        self.assets = pages.served_assets(self.source)
        self._studies: dict[str, object] = {}
        self._cache: dict[tuple, tuple[str, dict]] = {}
        self._lock = threading.Lock()
        self.default_study = load_study(self.storage, study).study_name if study else None

    def names(self) -> list[str]:
        """Study names, oldest first."""
        return [s.study_name for s in sorted(self.storage.get_all_studies(), key=lambda s: s._study_id)]

    def infos(self) -> list:
        from studies.storage import list_studies

        return list_studies(self.storage)

    def latest_name(self) -> str | None:
        from studies.storage import latest_study

        if self.default_study:
            return self.default_study
        infos = self.infos()
        return latest_study(infos).name if infos else None

    def study(self, name: str | None):
        """The loaded study ``name`` (kept, so Optuna's cache of finished trials is reused)."""
        import optuna

        if not name:
            raise ValueError("name a study: ?study=NAME")
        with self._lock:
            if name in self._studies:
                return self._studies[name]
        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
        except KeyError:
            raise NotFound(f"no study named {name!r} in {self.source}") from None
        with self._lock:
            return self._studies.setdefault(name, study)

    def study_payload(self, name: str, color_by: str = "kind", known: str | None = None) -> dict:
        """The study page's data, rebuilt only when the study changed (``unchanged`` if ``known`` is current)."""
        if color_by not in figures.COLOR_BY:
            raise ValueError(f"color: unknown choice {color_by!r}; choose one of {', '.join(figures.COLOR_BY)}")
        study = self.study(name)
        version = views.study_version(study)
        if known == version:
            return {"version": version, "unchanged": True}
        return self._cached(("study", name, color_by), version, lambda: views.study_payload(study, self.source, color_by))

    def compare_payload(self, first: str, second: str, known: str | None = None) -> dict:
        studies = (self.study(first), self.study(second))
        version = "|".join(views.study_version(s) for s in studies)
        if known == version:
            return {"version": version, "unchanged": True}

        def build():
            infos = [figures.pareto_info(s) for s in studies]
            return {
                "version": version,
                "figures": {
                    "latency": figures.figure_json(figures.compare_figure(*infos, x="latency_ms")),
                    "size": figures.figure_json(figures.compare_figure(*infos, x="size_kb")),
                    "hypervolume": figures.figure_json(figures.hypervolume_figure(*infos)),
                },
            }

        return self._cached(("compare", first, second), version, build)

    def _cached(self, key: tuple, version: str, build) -> dict:
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] == version:
            return hit[1]
        payload = build()
        payload["version"] = version
        with self._lock:
            self._cache[key] = (version, payload)
        return payload

    def trial_detail(self, name: str, number: int) -> dict:
        """What the trial page shows (``NotFound`` for an unknown trial)."""
        self.trial(name, number)
        return views.trial_detail(self.study(name), number, self.source, self.results)

    def sidecar(self, name: str, number: int) -> dict:
        """The JSON sidecar ``search export --trial N`` writes beside the trial's ``.tflite``."""
        from studies.export import download_sidecar

        self.trial(name, number)
        try:
            return download_sidecar(self.study(name), self.results, number)
        except LookupError as error:  # no stored model, or the trial is not complete
            raise NotFound(str(error)) from None

    def trial(self, name: str, number: int):
        try:
            return views.find_trial(self.study(name), number)
        except LookupError as error:
            raise NotFound(str(error)) from None

    def close(self) -> None:
        self.results.close()
        self.storage.engine.dispose()
