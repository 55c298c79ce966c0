"""ament_python package ``face_tracker_ros``: the ROS 2 nodes plus the framework-free core."""

import os
from glob import glob

from setuptools import find_namespace_packages, setup

PACKAGE = "face_tracker_ros"


def files(pattern):
    return [f for f in glob(pattern) if os.path.isfile(f)]


# Data folders without __init__.py (model assets, training configs) are namespace packages, so their
# files install as package data (next to the code that loads them, once) without setuptools'
# "installing ... as data is deprecated" warning.
PACKAGES = find_namespace_packages(include=["face_tracker_core", "face_tracker_core.*",
                                            "face_tracker_ros", "face_tracker_ros.*"],
                                   exclude=["*.__pycache__", "*.__pycache__.*"])
DATA_PACKAGES = {pkg: ["*"] for pkg in PACKAGES
                 if not os.path.isfile(os.path.join(*pkg.split("."), "__init__.py"))}


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=PACKAGES,
    package_data=DATA_PACKAGES,
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", files("launch/*.py")),
        ("share/" + PACKAGE + "/config", files("config/*")),
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
