from setuptools import find_packages, setup


def requirements(path):
    with open(path) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


setup(
    name="sparkprep",
    version="0.1.0",
    description="PySpark batch jobs that turn raw training files into clean, split, training-ready tables",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    python_requires=">=3.9",
    install_requires=requirements("requirements-cluster.txt"),  # no pyspark: clusters bring their own
    extras_require={"online": ["starlette>=0.37", "uvicorn>=0.30"]},  # sparkprep.online.http.asgi_app, served
    entry_points={"console_scripts": [
        "sparkprep-package = sparkprep.submit.package:main",
        "sparkprep-submit-emr = sparkprep.submit.emr:main",
        "sparkprep-submit-sagemaker = sparkprep.submit.sagemaker:main",
    ]},
)
