import { Dispatcher } from '../dispatch/dispatch.js';
import { LeaderElection } from './election.js';
export class LeaderRole {
    client;
    hostName;
    options;
    election;
    dispatcher;
    constructor(client, hostName, options = {}) {
        this.client = client;
        this.hostName = hostName;
        this.options = options;
        this.election = new LeaderElection(client, hostName, options.ttlSeconds ?? 3);
        this.election.on('elected', () => {
            this.options.log?.(`${hostName} is now the leader`);
            void this.startWork();
        });
        this.election.on('lost', (err) => {
            this.options.log?.(`${hostName} lost leadership: ${err.message}`);
            void this.stopWork();
        });
    }
    get isLeader() {
        return this.election.current !== undefined;
    }
    get lastUnplaced() {
        return this.dispatcher?.lastUnplaced ?? [];
    }
    start() {
        this.election.start();
    }
    async startWork() {
        await this.stopWork();
        const log = this.options.log;
        this.dispatcher = new Dispatcher(this.client, () => this.election.current, log ? { log } : {});
        this.dispatcher.start();
    }
    async stopWork() {
        const d = this.dispatcher;
        this.dispatcher = undefined;
        await d?.stop();
    }
    async stop() {
        await this.stopWork();
        await this.election.resign();
    }
}
//# sourceMappingURL=leader.js.map