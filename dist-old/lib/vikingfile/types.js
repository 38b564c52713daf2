/**
 * The typed form of a Vikingfile, as the rest of viking consumes it.
 *
 * The YAML is user input; these objects are what survived validation, so
 * every name here is already a safe etcd key segment (`[a-z0-9-]`).
 */
export {};
//# sourceMappingURL=types.js.map