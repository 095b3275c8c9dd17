"""What the image datasets share: indexing with torchvision's transform hooks."""

from chainrule.utils.data import Dataset


class LabelledImages(Dataset):
    """Images with integer labels; a subclass says how to turn stored image ``i`` into a tensor."""

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        image = self._image_tensor(index)
        label = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def _image_tensor(self, index):
        raise NotImplementedError
