"""ament_python package ``face_tracker_ros``: the ROS 2 nodes plus the framework-free core."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "face_tracker_ros"


def files(pattern):
    return [f for f in glob(pattern) if os.path.isfile(f)]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["face_tracker_core", "face_tracker_core.*",
                                    "face_tracker_ros", "face_tracker_ros.*"]),
    package_data={"face_tracker_core": ["assets/*", "assets/**/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", files("launch/*.py")),
        ("share/" + PACKAGE + "/config", files("config/*")),
        ("share/" + PACKAGE + "/models", files("face_tracker_core/assets/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="face_tracker developers",
    maintainer_email="dev@face-tracker.invalid",
    description="Face tracking, recognition, attributes and reenactment for ROS 2 with a trainable core.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "face_tracker_node = face_tracker_ros.face_tracker_node:main",
            "multi_camera_node = face_tracker_ros.multi_camera_node:main",
            "video_source_node = face_tracker_ros.video_source_node:main",
            "face_capture_node = face_tracker_ros.face_capture_node:main",
            "face_reenactment_node = face_tracker_ros.face_reenactment_node:main",
            "face_tracker_demo = face_tracker_ros.demo:main",
            "face-tracker = face_tracker_core.cli.main:main",
        ],
    },
)
