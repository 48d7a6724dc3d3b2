"""Pure label making: QR matrices, label images and print sheets (built in the labels stage)."""
