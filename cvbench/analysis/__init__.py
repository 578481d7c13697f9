"""The thesis' analysis as figures (sections 3.3 and 4.5, appendix 6.3 and 6.4).

- :mod:`.embeddings`: t-SNE in R^2, the same points on S^1, a von Mises-Fisher
  density of their angles (figures 4.3 and 4.4);
- :mod:`.heatmaps`: similarity of every reference tile at its location (appendix 6.3);
- :mod:`.feature_maps`: the backbone's last feature map over its images (appendix 6.4);
- :mod:`.curves`: loss, R@1 and uniformity per epoch (figure 4.5);
- :mod:`.figure_files`: writing a figure as PNG, PDF or SVG at a resolution, atomically;
- :mod:`.run_analysis`: all of them for a run folder (``cvbench analyze``).
"""
