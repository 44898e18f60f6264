"""DTS Explorer app: ``python app.py`` (honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)."""

from dts_app.ui.layout import build_demo

if __name__ == "__main__":
    build_demo().launch()
