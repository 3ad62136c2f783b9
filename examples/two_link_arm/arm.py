"""``TwoLinkArmEnv``: a planar two-link arm under gravity that must bring the payload in its hand to a target.

State: shoulder and elbow angles ``q`` (0: hanging straight down) and their velocities; the target is a mocap body,
drawn at every reset on the arm's right side, from 45 degrees below the shoulder's horizontal to 45 degrees above it,
at 40% to 90% of the arm's reach. Holding the payload there takes torque against gravity, so the payload's mass
(``body_mass.hand``) decides whether the motors can do it: the model field the robustness plot varies.

- observation ``(10,)``: ``cos q, sin q`` (2 + 2), ``dq/dt`` (2), target - shoulder (x, z), hand - target (x, z);
- action ``(2,)`` in [-1, 1]: the motors' controls (torque = gear * control);
- reward per step: ``-|hand - target| - ctrl_cost_weight * |action|^2``; no termination, 200 steps (4 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

ARM_XML = str(Path(__file__).with_name("arm.xml"))
"""The default model file (absolute, so Gymnasium does not look for it among its own assets)."""
CAMERA = {"distance": 2.2, "elevation": 0.0, "azimuth": 90.0, "lookat": np.array([0.1, 0.0, 0.6])}


class TwoLinkArmEnv(MujocoEnv, utils.EzPickle):
    """The arm (see the module docstring). Arguments: ``xml_file`` (an MJCF model with bodies ``upper_arm`` and
    ``hand``, site ``tip``, one mocap body), ``frame_skip`` (MuJoCo steps per env step), ``ctrl_cost_weight``,
    ``reset_noise_scale`` (uniform noise on the initial angles and velocities)."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"], "render_fps": 50}

    def __init__(
        self,
        xml_file: str = ARM_XML,
        frame_skip: int = 2,
        ctrl_cost_weight: float = 0.01,
        reset_noise_scale: float = 0.1,
        default_camera_config: dict[str, Any] = CAMERA,
        **kwargs: Any,
    ) -> None:
        utils.EzPickle.__init__(
            self, xml_file, frame_skip, ctrl_cost_weight, reset_noise_scale, default_camera_config, **kwargs
        )
        if ctrl_cost_weight < 0:
            raise ValueError(f"ctrl_cost_weight must be >= 0, got {ctrl_cost_weight}")
        self._ctrl_cost_weight = float(ctrl_cost_weight)
        self._reset_noise_scale = float(reset_noise_scale)
        observation_space = Box(low=-np.inf, high=np.inf, shape=(10,), dtype=np.float64)
        MujocoEnv.__init__(
            self,
            xml_file,
            frame_skip,
            observation_space=observation_space,
            default_camera_config=default_camera_config,
            **kwargs,
        )
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}
        mujoco.mj_kinematics(self.model, self.data)  # body and site positions of the initial (hanging) pose
        self._shoulder = self.data.body("upper_arm").xpos.copy()
        self._reach = float(np.linalg.norm(self.data.site("tip").xpos - self._shoulder))  # hanging at q = 0

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, float]]:
        self.do_simulation(action, self.frame_skip)
        distance = float(np.linalg.norm(self._hand_to_target()))
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(action)))
        if self.render_mode == "human":
            self.render()
        # no truncation here: the TimeLimit wrapper that gymnasium.make adds ends episodes after 200 steps
        return self._get_obs(), -distance - ctrl_cost, False, False, {"distance": distance, "ctrl_cost": ctrl_cost}

    def reset_model(self) -> np.ndarray:
        angle = self.np_random.uniform(np.pi / 4, 3 * np.pi / 4)  # from the downward vertical, towards +x
        radius = self.np_random.uniform(0.4, 0.9) * self._reach
        self.data.mocap_pos[0] = self._shoulder + radius * np.array([np.sin(angle), 0.0, -np.cos(angle)])
        noise = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-noise, noise, self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-noise, noise, self.model.nv)
        self.set_state(qpos, qvel)  # mj_forward: the target body moves to its new mocap position too
        return self._get_obs()

    def _hand_to_target(self) -> np.ndarray:
        """(x, z) from the target to the hand's tip."""
        return (self.data.site("tip").xpos - self.data.mocap_pos[0])[[0, 2]]

    def _get_obs(self) -> np.ndarray:
        q = self.data.qpos.flat[:2]
        target = (self.data.mocap_pos[0] - self._shoulder)[[0, 2]]
        return np.concatenate([np.cos(q), np.sin(q), self.data.qvel.flat[:2], target, self._hand_to_target()])
