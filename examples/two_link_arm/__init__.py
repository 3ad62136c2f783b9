"""A robot that is not in Gymnasium, as a tiny env package: a two-link arm that carries a payload to a target.

Importing this package registers ``TwoLinkArm-v0`` in Gymnasium's registry, so mjreinforce (or ``gymnasium.make``)
finds it through Gymnasium's ``module:EnvId`` convention::

    mjreinforce train --env examples.two_link_arm:TwoLinkArm-v0      # from the repository's root

The model is ``arm.xml`` beside this file; ``--env-kwarg xml_file=examples/two_link_arm/long_arm.xml`` trains the
same env on another model file. See docs/own-robot.md.
"""

import gymnasium

gymnasium.register(
    id="TwoLinkArm-v0",
    entry_point=f"{__name__}.arm:TwoLinkArmEnv",  # this package's arm module, under whatever name it was imported
    max_episode_steps=200,
)
