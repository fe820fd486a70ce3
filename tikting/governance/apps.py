from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "tikting.governance"
    label = "governance"

    def ready(self) -> None:
        from django.urls import reverse

        from tikting.attachments.registry import Target, register_target
        from tikting.improvement import permissions as P

        from .models import Minute

        # A minute's files (the PIR document discussed, a slide): read by whoever reads reviews,
        # added by managers (who record minutes); on the review's history.
        register_target(
            Minute,
            Target(
                label="minute",
                can_view=lambda user, minute: P.can_view(user),
                can_attach=lambda user, minute: P.can_manage(user),
                root=lambda minute: minute.meeting,
                url=lambda minute: (
                    reverse("governance:review_detail", args=[minute.meeting_id]) + f"#minute-{minute.pk}"
                ),
            ),
        )
