"""aidetect: tell AI-generated images from real photos (CIFAKE-trained ResNet101)."""
