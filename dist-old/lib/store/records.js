/**
 * The JSON records viking keeps in etcd, one interface per key family.
 * Everything that crosses a process boundary through etcd is typed here.
 */
export {};
//# sourceMappingURL=records.js.map