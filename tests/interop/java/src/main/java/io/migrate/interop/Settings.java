package io.migrate.interop;

/** Reading the service's settings from the environment, with errors that name the variable. */
public final class Settings {
  private Settings() {}

  public static String required(String name) {
    String value = System.getenv(name);
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException(name + " is not set");
    }
    return value;
  }

  public static String string(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isBlank() ? fallback : value;
  }

  public static boolean flag(String name, boolean fallback) {
    String value = string(name, Boolean.toString(fallback));
    return switch (value) {
      case "true" -> true;
      case "false" -> false;
      default -> throw new IllegalArgumentException(name + "=" + value + ": expected true or false");
    };
  }

  public static long number(String name, long fallback) {
    String value = string(name, Long.toString(fallback));
    try {
      return Long.parseLong(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + value + ": expected a number of milliseconds");
    }
  }
}
