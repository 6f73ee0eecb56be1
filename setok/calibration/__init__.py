"""Calibration of Algorithm 1's unspecified settings before SeTok trains (docs/paper-notes.md C7).

:mod:`~setok.calibration.sweep` clusters one set of features under every grid setting and picks one;
:mod:`~setok.calibration.content` relates token counts to image content; :mod:`~setok.calibration.overlay` carries
the chosen values into the resolved config. The command line is :mod:`setok.calibrate_clustering`. Importing this
package is light (no torch): the workflow reads :mod:`~setok.calibration.overlay` while it plans.
"""
