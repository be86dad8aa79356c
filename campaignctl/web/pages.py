"""The pages recipients see: Jinja templates of the package, autoescaped, one stylesheet.

The texts are in French, the language of the demo's recipients; the organisation's
name comes from campaignctl.yaml. Pages need no JavaScript and fit a phone.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from campaignctl.spec.models import WorkspaceConfig

ERRORS = {
    400: ("Demande incomplète", "Cette demande n'a pas pu être lue."),
    403: (
        "Formulaire expiré",
        "Ce formulaire a expiré. Revenez à la page précédente, rechargez-la et envoyez-le à "
        "nouveau.",
    ),
    404: (
        "Lien invalide",
        "Ce lien n'est pas valide ou n'est plus valable. Utilisez le lien du message le plus "
        "récent que vous avez reçu.",
    ),
    405: ("Lien invalide", "Ce lien ne s'ouvre pas de cette façon."),
    409: ("Déjà traité", "Votre réponse a déjà été traitée par l'équipe : merci !"),
    413: ("Envoi trop volumineux", "Ce que vous avez envoyé est trop volumineux."),
    429: ("Trop de demandes", "Trop de demandes en peu de temps : réessayez dans une minute."),
    503: (
        "Service momentanément indisponible",
        "Nous n'avons pas pu enregistrer votre demande. Réessayez dans quelques minutes.",
    ),
}


class Pages:
    """Renders the page templates with the organisation's name in every page."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("campaignctl.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # the package's templates do not change while serving
        )
        self.env.globals["organization"] = config.organization
        self._assets: dict[str, bytes] = {}

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(
            body, status_code=status, headers={"cache-control": "no-store, private"}
        )

    def error(self, status: int) -> HTMLResponse:
        title, text = ERRORS.get(status, ERRORS[400])
        return self.html("message.html", status, title=title, text=text)

    def asset(self, name: str) -> bytes | None:
        if name != "style.css":
            return None
        if name not in self._assets:
            self._assets[name] = (
                resources.files("campaignctl.web").joinpath("static").joinpath(name).read_bytes()
            )
        return self._assets[name]
