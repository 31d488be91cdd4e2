"""A demo tool from the MLflow tool-calling example: the weather it reports is made up."""


def get_weather(city: str) -> str:
    """Get weather information for a city. DEMO: returns made-up data, not a real forecast.

    Args:
        city: City name to get weather information for
    """
    return f"It's sunny in {city}, with a temperature of 20C (demo data, not a real forecast)"
