/**
 * The Docker Engine client and the two quirks every caller must handle:
 * progress streams that report failure only as an `{error}` entry, and
 * NDJSON streams that must be split by hand.
 */
import Docker from 'dockerode';
import { VikingError } from '../errors.js';
/** Connects to the daemon named by DOCKER_HOST (unix://path) or the default socket. */
export function connectDocker(socketPath) {
    const fromEnv = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : undefined;
    return new Docker({ socketPath: socketPath ?? fromEnv ?? '/var/run/docker.sock' });
}
/**
 * Follows a progress stream to its end. dockerode's followProgress reports a
 * failed build or push as success; here an `error` entry rejects, carrying
 * the output seen so far so the user sees the failing step.
 */
export function followProgress(docker, stream, onEvent = () => { }) {
    return new Promise((resolve, reject) => {
        docker.modem.followProgress(stream, (err, output) => {
            if (err)
                return reject(err);
            const failed = output.find((e) => e.error !== undefined || e.errorDetail !== undefined);
            if (failed) {
                const message = failed.errorDetail?.message ?? failed.error ?? 'unknown error';
                const error = new Error(message);
                error.output = output;
                return reject(error);
            }
            resolve(output);
        }, (event) => onEvent(event));
    });
}
/** Fails fast with a clear error when no daemon answers. */
export async function assertDockerReachable(docker) {
    try {
        await docker.ping();
    }
    catch (err) {
        throw new VikingError('VIKING_E_DOCKER_UNAVAILABLE', `cannot reach the Docker Engine (${err.message}); is dockerd running?`);
    }
}
//# sourceMappingURL=client.js.map