"""Datasets: readers, LabelMe, augmentation, splits, tf.data builders."""
